"""LLM clients: the protocol (``base``), the Anthropic client (``anthropic``), the offline model
(``offline``) and the choice between them (``factory``). Import the module you need: this
package imports nothing, so loading ``llm.base`` never loads the Anthropic SDK."""
