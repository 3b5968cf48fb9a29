-- Swap a sealed field only if it still holds what the caller read: a concurrent refresh (or
-- rotation) wins.
-- KEYS[1] the record (hash)
-- ARGV[1] the field
-- ARGV[2] the value read
-- ARGV[3] the value re-sealed
-- Returns 1 swapped, 0 the field changed meanwhile (nothing written).
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
