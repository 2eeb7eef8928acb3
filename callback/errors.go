package callback

import "errors"

// The sentinel errors below classify every failure this package reports.
// Callers test them with errors.Is; the wrapped message adds the detail (a
// length, an offset, the element that is missing) and never a secret.
//
// All but ErrKey describe a request that must be refused: WeChat retries a
// push it considers undelivered, so refusing a forged or damaged one costs
// nothing, while acting on it could store a bogus ticket. ErrKey describes our
// own configuration and should stop the process from serving that callback
// at all.
var (
	// ErrSignature reports that a signature or msg_signature does not match
	// the one computed with our token. Either the request did not come from
	// WeChat, it was altered on the way, or the configured token is not the
	// one entered in WeChat's console.
	ErrSignature = errors.New("callback: signature mismatch")

	// ErrKey reports that the token or EncodingAESKey given to NewCrypter
	// cannot be used, or that a Crypter was not made by NewCrypter. It is a
	// configuration error: retrying does not help.
	ErrKey = errors.New("callback: invalid key")

	// ErrCiphertext reports that an Encrypt value or echostr is not base64, or
	// does not decode to a whole number of 32-byte blocks, so it cannot be
	// WXBizMsgCrypt output at all.
	ErrCiphertext = errors.New("callback: invalid ciphertext")

	// ErrPadding reports that a decrypted message does not end in valid
	// PKCS#7 padding to a 32-byte block. Behind a verified signature this
	// almost always means the configured EncodingAESKey is not the one WeChat
	// encrypts with.
	ErrPadding = errors.New("callback: invalid padding")

	// ErrMalformed reports a structure that does not parse: a request
	// envelope that is not well-formed XML, has no Encrypt element or more
	// than one, a decrypted message whose length field runs past its end, or
	// an event that lacks the field its InfoType requires. It also reports a
	// value handed to EncryptMessage or SealRequest that XML cannot carry.
	ErrMalformed = errors.New("callback: malformed message")

	// ErrReceiveID reports a message that decrypted correctly but was sealed
	// for a different receive id than the Crypter's: a push for another
	// account routed to this URL, or a Crypter configured with the wrong
	// appid, corpid or suite id.
	ErrReceiveID = errors.New("callback: receive id is not ours")

	// ErrTooLarge reports a request body over MaxBodySize, or a message too
	// long for the 4-byte length field WXBizMsgCrypt frames it with.
	ErrTooLarge = errors.New("callback: message too large")
)
