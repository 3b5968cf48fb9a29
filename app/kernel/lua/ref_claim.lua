-- A tenant's account claims a vendor webhook ref (one account per tenant, at most ARGV[3]
-- tenants per ref).
-- KEYS[1] the ref's claims (hash tenant -> account)
-- ARGV[1] tenant
-- ARGV[2] account
-- ARGV[3] the most claims a ref takes (MAX_REF_CLAIMS)
-- Returns (ClaimReply) 'ok' claimed, or already this account's (OK); 'full' (FULL); else the
-- tenant's other account that holds the claim.
local mine = redis.call('HGET', KEYS[1], ARGV[1])
if mine == ARGV[2] then return 'ok' end
if mine then return mine end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return 'full' end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 'ok'
