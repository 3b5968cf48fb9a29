-- toolqueue's own API limit (app/api/throttle.py): refill the tenant's token bucket from
-- Redis TIME and take one token if there is one. Floats come back as strings (Redis
-- truncates numbers); %.17g round-trips a double (Lua's own tostring keeps only 14 digits).
-- KEYS[1] tenant (hash: rate_limit, rate_window_s override the settings)
-- KEYS[2] the tenant's bucket (hash: tokens, at in microseconds)
-- ARGV[1] the limit setting (requests per window)
-- ARGV[2] the window setting (s)
-- Returns {allowed (1 yes, 0 no), limit (0 unlimited), window, tokens left}.
local o = redis.call('HMGET', KEYS[1], 'rate_limit', 'rate_window_s')
local limit = tonumber(o[1]) or tonumber(ARGV[1])
local window = tonumber(o[2]) or tonumber(ARGV[2])
if limit <= 0 or not (window > 0) then return {1, 0, '0', '0'} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local per_us = limit / (window * 1000000)
local tokens = limit
local b = redis.call('HMGET', KEYS[2], 'tokens', 'at')
if b[1] then
  tokens = math.min(limit, tonumber(b[1]) + math.max(0, now - tonumber(b[2])) * per_us)
end
local allowed = 0
if tokens >= 1 - 1e-9 then
  allowed = 1
  tokens = math.max(0, tokens - 1)
  redis.call('HSET', KEYS[2], 'tokens', string.format('%.17g', tokens),
             'at', string.format('%.17g', now))
  redis.call('PEXPIRE', KEYS[2], math.ceil((limit - tokens) / per_us / 1000) + 1)
end
return {allowed, limit, string.format('%.17g', window), string.format('%.17g', tokens)}
