package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// Headers of a delivery, the contract with destinations.
const (
	HeaderCredential = "X-Wxtoken-Credential"
	HeaderDelivery   = "X-Wxtoken-Delivery"
	HeaderSignature  = "X-Wxtoken-Signature"
)

// Sign returns the X-Wxtoken-Signature value for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>". The
// timestamp is signed with the body, so a destination can refuse an old
// delivery replayed to it.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}
