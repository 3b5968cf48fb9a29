-- Mark the account needs_reauth, unless its credentials changed since the caller used them
-- (ARGV[1], the token record's version then; '*' skips the check). The version is bumped so
-- that a refresh in flight with the refused credentials cannot write `status: active` back
-- over the mark.
-- KEYS[1] the account's token record (hash)
-- ARGV[1] the version the caller read ('*' any)
-- ARGV[2] now (epoch s): reauth_since
-- ARGV[3] the reason
-- Returns (MarkResult) 1 the transition into needs_reauth (MARKED), 0 it was marked already
-- (ALREADY), -1 the version is stale (STALE).
if ARGV[1] ~= '*' and (redis.call('HGET', KEYS[1], 'version') or '') ~= ARGV[1] then
  return -1
end
redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'status', 'needs_reauth')
if redis.call('HSETNX', KEYS[1], 'reauth_since', ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'reauth_reason', ARGV[3])
return 1
