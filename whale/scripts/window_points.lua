-- The fields and values of one sum series' chunks (whale/reads.py), unless the caller holds
-- them: each chunk is answered with a digest of its content (SHA-1 of DUMP), and its fields
-- only when that is not the digest the caller sent for it.
-- KEYS[1..n] the chunk hashes of one series that hold the window (one slot)
-- ARGV[1..n] per key, the digest the caller holds for it ('' for none)
-- Returns one reply per key: {digest} when the caller holds it, else {digest, fields and
--   values as HGETALL answers them}; a chunk that does not exist is {'', {}}.
local out = {}
for k = 1, #KEYS do
  local dump = redis.call('DUMP', KEYS[k])
  if not dump then
    out[k] = {'', {}}
  else
    local digest = redis.sha1hex and redis.sha1hex(dump) or dump  -- fakeredis has no sha1hex
    if digest == ARGV[k] then
      out[k] = {digest}
    else
      out[k] = {digest, redis.call('HGETALL', KEYS[k])}
    end
  end
end
return out
