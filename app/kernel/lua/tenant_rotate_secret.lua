-- Move the tenant's current webhook secret to `prev` and install the new one, atomically (two
-- rotations at once cannot both demote the same secret and lose one).
-- KEYS[1] tenant (hash)
-- ARGV[1] the new secret, sealed
-- ARGV[2] until when (epoch s) the previous one keeps signing
-- Returns 1 rotated, 0 no such tenant.
local cur = redis.call('HGET', KEYS[1], 'webhook_secret')
if not cur then return 0 end
redis.call('HSET', KEYS[1], 'webhook_secret_prev', cur, 'webhook_secret_prev_until', ARGV[2],
           'webhook_secret', ARGV[1])
return 1
