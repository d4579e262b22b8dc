"""How an operator GETS IN: the admin (``admin/``), the REST API (``rest/``), the MCP tools
(``mcp/``) and the command line (``cli.py``; the commands themselves stay in
``management/commands/`` where Django looks for them). ``access.py`` is what they share:
the token-to-actor function and ``authorize``. A door parses, calls one act or read, and
maps the one error hierarchy (``reactions_admin.errors``); it holds no business rule."""
