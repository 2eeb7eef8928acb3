// Package callback implements the cryptography of WeChat's server callbacks:
// the signatures WeChat puts on every request it makes to a configured URL,
// and WXBizMsgCrypt, the AES scheme that wraps encrypted ("safe mode")
// messages for Official Accounts, Open Platform third-party platforms and
// WeCom.
//
// wxtoken needs it because two of the credentials it keeps are pushed rather
// than fetched. WeChat POSTs an encrypted component_verify_ticket to a
// third-party platform every ten minutes, and WeCom pushes a suite_ticket to
// a suite just as often; without the latest one no component or suite token
// can be had. The server receives those pushes itself, and the fake WeChat
// used in tests and the demo sends them through the same code.
//
// # Signatures
//
// In plain mode WeChat signs a request with Signature: SHA-1 over the token,
// timestamp and nonce, sorted and joined. An Official Account verifies its
// URL with a GET carrying signature, timestamp, nonce and echostr; the server
// answers echostr unchanged when VerifySignature holds.
//
// Encrypted messages carry a msg_signature instead (MsgSignature), which adds
// the ciphertext to the hashed values. Both verifiers compare in constant
// time.
//
// # Encrypted messages
//
// A Crypter holds one callback configuration: token, EncodingAESKey and the
// receive id that WeChat seals inside every message for it (see NewCrypter
// for which id each account kind uses). A sealed message is
//
//	base64(AES-256-CBC(key, iv = key[:16],
//	    16 random bytes | uint32 big-endian len(msg) | msg | receive id | PKCS#7 padding to 32 bytes))
//
// DecryptMessage opens a request body, VerifyURL answers WeCom's encrypted
// URL verification, EncryptMessage seals a passive reply, and SealRequest
// builds a request as WeChat would, for a fake WeChat. ParseEvent reads the
// fields the token server needs from a decrypted push. A handler for the
// component push URL looks like this:
//
//	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, callback.MaxBodySize))
//	if err != nil { ... }
//	q := r.URL.Query()
//	plain, err := crypter.DecryptMessage(q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), body)
//	if err != nil { ... } // refuse: WeChat retries a push it considers undelivered
//	ev, err := callback.ParseEvent(plain)
//	if err != nil { ... }
//	if ev.InfoType == callback.InfoComponentVerifyTicket { ... } // store ev.ComponentVerifyTicket
//	io.WriteString(w, "success")
//
// # Security
//
// WXBizMsgCrypt has no MAC. CBC ciphertext is malleable: flipping bits in one
// block garbles that block and flips the same bits in the next, and the first
// block is the random prefix that nobody reads, so a forger can change the
// start of a message without Decrypt noticing. The msg_signature is the only
// authentication. DecryptMessage and VerifyURL therefore check it before
// decrypting, and Decrypt is only for ciphertexts whose signature has been
// checked. Because nothing is decrypted before the signature matches, the
// distinct padding and framing errors are no padding oracle.
//
// The receive id inside the ciphertext, not the plaintext ToUserName or AppId
// beside it, decides whom a message is for; Decrypt rejects any other with
// ErrReceiveID.
//
// A request body must be parsed before its signature can be checked, so
// DecryptMessage refuses bodies over MaxBodySize first. encoding/xml resolves
// no external entities. Decrypt, DecryptMessage and ParseEvent are fuzzed and
// never panic on any input.
//
// The token and key never appear in errors, and a Crypter prints and logs as
// its receive id alone.
//
// # Errors
//
// Every failure wraps one of the sentinel errors (ErrSignature, ErrKey,
// ErrCiphertext, ErrPadding, ErrMalformed, ErrReceiveID, ErrTooLarge) for
// errors.Is; the message adds detail.
package callback
