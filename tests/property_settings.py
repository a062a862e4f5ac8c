"""How hard the property and fault tests push: a CI-sized count by default, the full count with
``DISTMAP_PROPERTY_EXAMPLES`` (e.g. 2000) in the environment."""

from __future__ import annotations

import os

EXAMPLES = int(os.environ.get("DISTMAP_PROPERTY_EXAMPLES", "60"))
