"""The store: records kept in Redis (job records and their state log, spools, tokens,
account budgets, accounts, tenants), each read and written atomically. Imports the kernel."""
