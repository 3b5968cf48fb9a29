-- Pending work begins at attempt 0, once (a second start of the same member is a no-op).
-- KEYS: due, pending. ARGV: member, deadline. Returns 1 if this call started it.
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
tq_pending(KEYS[1], KEYS[2], ARGV[1], '0', ARGV[2], '0')
return 1
