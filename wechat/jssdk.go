package wechat

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"strconv"
	"strings"
)

// JSSDKSignature signs a page for wx.config (and, with a WeCom agent
// ticket, wx.agentConfig): the lowercase hex SHA-1 of
//
//	jsapi_ticket=TICKET&noncestr=NONCE&timestamp=TS&url=URL
//
// with the keys in that order (ASCII order of the names) and the values
// raw, without URL-escaping. url is the full address of the page that
// calls wx.config, query included; WeChat signs it without its #fragment,
// so anything from the first '#' on is dropped here. timestamp is in
// seconds since the Unix epoch. The same algorithm serves Official
// Accounts, third-party platforms' authorizers and WeCom.
func JSSDKSignature(ticket, nonceStr string, timestamp int64, url string) string {
	url, _, _ = strings.Cut(url, "#")
	var b strings.Builder
	b.Grow(len("jsapi_ticket=&noncestr=&timestamp=&url=") + len(ticket) + len(nonceStr) + 20 + len(url))
	b.WriteString("jsapi_ticket=")
	b.WriteString(ticket)
	b.WriteString("&noncestr=")
	b.WriteString(nonceStr)
	b.WriteString("&timestamp=")
	b.WriteString(strconv.FormatInt(timestamp, 10))
	b.WriteString("&url=")
	b.WriteString(url)
	sum := sha1.Sum([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}

// nonceAlphabet is what NewNonce draws from: letters and digits, which
// need no escaping in the JSON, URL or JavaScript a nonce travels in.
const nonceAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// nonceLen matches the nonce of WeChat's own signature example.
const nonceLen = 16

// NewNonce returns a random noncestr for JSSDKSignature: 16 characters
// from [A-Za-z0-9], drawn from crypto/rand by rejection sampling so that
// every character is equally likely.
func NewNonce() string {
	out := make([]byte, 0, nonceLen)
	var buf [32]byte
	for len(out) < nonceLen {
		rand.Read(buf[:]) // never fails (crypto/rand, Go 1.24+)
		for _, c := range buf {
			// 248 = 4*62: values below it map evenly onto the alphabet.
			if c < 248 && len(out) < nonceLen {
				out = append(out, nonceAlphabet[c%62])
			}
		}
	}
	return string(out)
}
