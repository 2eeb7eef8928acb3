package callback

import (
	"crypto/sha1" // WeChat defines its signatures as SHA-1; the choice is not ours.
	"crypto/subtle"
	"encoding/hex"
	"io"
	"slices"
)

// Signature returns the signature WeChat sends in the signature query
// parameter of a plain-mode Official Account request, including the GET that
// verifies a server URL: the lowercase hex SHA-1 of token, timestamp and nonce,
// sorted and concatenated.
//
// The token is the secret entered in WeChat's console; timestamp and nonce
// come from the request's query string.
func Signature(token, timestamp, nonce string) string {
	return sortedSHA1(token, timestamp, nonce)
}

// MsgSignature returns the msg_signature of an encrypted message: the
// lowercase hex SHA-1 of token, timestamp, nonce and the base64 ciphertext
// (the Encrypt element, or WeCom's echostr), sorted and concatenated.
//
// It is the only thing that authenticates a WXBizMsgCrypt message; see the
// package documentation.
func MsgSignature(token, timestamp, nonce, encrypt string) string {
	return sortedSHA1(token, timestamp, nonce, encrypt)
}

// VerifySignature reports whether signature equals Signature(token,
// timestamp, nonce).
//
// The comparison takes constant time, so response timing tells a forger
// nothing about how much of a guess was right. It is case-sensitive: WeChat
// always sends lowercase hex, as Tencent's own samples produce and compare it,
// so a signature in uppercase was not sent by WeChat unaltered and is
// rejected. An empty token never verifies: anyone can compute a signature
// over an empty secret, and failing closed makes a missing token visible at
// once instead of leaving the URL open.
func VerifySignature(token, timestamp, nonce, signature string) bool {
	if token == "" {
		return false
	}
	return equalHex(Signature(token, timestamp, nonce), signature)
}

// VerifyMsgSignature reports whether msgSignature equals MsgSignature(token,
// timestamp, nonce, encrypt). Like VerifySignature it compares in constant
// time, case-sensitively against lowercase hex, and never verifies with an
// empty token.
func VerifyMsgSignature(token, timestamp, nonce, encrypt, msgSignature string) bool {
	if token == "" {
		return false
	}
	return equalHex(MsgSignature(token, timestamp, nonce, encrypt), msgSignature)
}

// sortedSHA1 hashes parts in byte-wise sorted order. Tencent's reference code
// sorts Java or PHP strings, which for the ASCII values WeChat sends (digits,
// base64, a console token) is the same order.
func sortedSHA1(parts ...string) string {
	sorted := slices.Clone(parts)
	slices.Sort(sorted)
	h := sha1.New()
	for _, p := range sorted {
		io.WriteString(h, p) // a hash.Hash never returns an error
	}
	return hex.EncodeToString(h.Sum(nil))
}

// equalHex compares a computed signature with a received one in time that
// depends only on their lengths, and the length of a valid one is public.
func equalHex(want, got string) bool {
	return subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}
