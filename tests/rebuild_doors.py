"""Each rebuild act at each of the four doors: its REST path (after ``…/rebuild``), its
MCP tool, its command-line option and its admin action (the access matrix and the
same-refusal tests walk them all)."""

from __future__ import annotations

REST_PATH = {"start": "", "swap": "/swap", "cancel": "/cancel", "roll_back": "/roll-back"}
TOOL = {"start": "start_rebuild", "swap": "swap_rebuild", "cancel": "cancel_rebuild",
        "roll_back": "roll_back_rebuild"}  # fmt: skip
OPTION = {"start": [], "swap": ["--swap"], "cancel": ["--cancel"], "roll_back": ["--roll-back"]}
ACTION = {"start": "rebuild_action", "swap": "swap_rebuild_action",
          "cancel": "cancel_rebuild_action", "roll_back": "roll_back_rebuild_action"}  # fmt: skip
