"""The MCP door: the tools (``server.py``, ``console.py``), over stdio and over
streamable HTTP at ``/mcp`` (``http.py``)."""
