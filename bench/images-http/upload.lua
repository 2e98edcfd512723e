-- wrk: POST the bytes of $BODY_FILE as a raw image/jpeg body with a bearer token ($TOKEN).
-- Lua strings are byte strings, so the JPEG goes out unchanged (the server checks it: a mangled
-- body would answer 415/422 and show up as non-2xx below).
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "image/jpeg"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
dofile(os.getenv("HERE") .. "/report.lua")
