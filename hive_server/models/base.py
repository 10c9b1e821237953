"""``Model``: the base of the models in this package.

``defer_build``: pydantic builds a model's validator and serialiser (its core schema) at the
model's first use instead of when its module is imported. A server process imports every
model but uses a few in its first requests; building all of them at import was about 120
ms of the 800 ms of CPU a start took before ``/api/health`` answered, and every test server
and pytest worker paid it. A model is built once either way; nothing else
changes (the OpenAPI document, validation and dumps are the same).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(defer_build=True)
