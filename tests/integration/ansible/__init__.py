"""muster against the real ansible-core (a test dependency).

Ansible reads its configuration when first imported, so the in-process
oracles are made hermetic here, before any test module of this package
imports it: an empty config file (no ansible.cfg of the machine counts) and
a fresh ANSIBLE_HOME and temp directory per test session.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_HOME = Path(tempfile.mkdtemp(prefix="muster-ansible-"))
(_HOME / "empty.cfg").write_text("")
(_HOME / "tmp").mkdir()
os.environ["ANSIBLE_CONFIG"] = str(_HOME / "empty.cfg")
os.environ["ANSIBLE_HOME"] = str(_HOME)
os.environ["ANSIBLE_LOCAL_TEMP"] = str(_HOME / "tmp")
os.environ["ANSIBLE_COLLECTIONS_PATH"] = str(_HOME / "collections")
os.environ["ANSIBLE_HOST_PATTERN_MISMATCH"] = "ignore"
os.environ["ANSIBLE_LOCALHOST_WARNING"] = "0"
os.environ["ANSIBLE_INVENTORY_UNPARSED_WARNING"] = "0"
os.environ["ANSIBLE_INVENTORY_ENABLED"] = "host_list,yaml,ini"
