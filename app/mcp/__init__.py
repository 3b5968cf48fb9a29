"""toolqueue's MCP server: the tool registry as MCP tools whose calls are jobs.

`server` builds it (tools, the job_* fallback tools, stdio entry point), `tasks` adds the
`io.modelcontextprotocol/tasks` extension, `http` serves it at `/mcp` inside the API process.
"""
