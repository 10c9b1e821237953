"""Runtime: what runs in a session (queen, colony workers, the agent loop, the conversation)."""
