package callback

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
)

const (
	// keyLength is the length of an EncodingAESKey: 32 bytes in base64 with
	// the trailing "=" dropped.
	keyLength = 43

	// padBlock is the PKCS#7 block size of WXBizMsgCrypt. It is 32, not the
	// AES block size of 16, because Tencent's reference code pads to the key
	// length; every WeChat sender and receiver depends on that.
	padBlock = 32

	// A plaintext is a random prefix, a big-endian uint32 message length,
	// the message and the receive id, in that order.
	prefixLen = 16
	headerLen = prefixLen + 4
)

// Crypter seals and opens WeChat's encrypted callback messages
// (WXBizMsgCrypt, "safe mode") for one callback configuration: the token and
// EncodingAESKey entered in WeChat's console, and the receive id that WeChat
// seals inside every message for that configuration.
//
// A Crypter is safe for concurrent use, provided Rand is.
type Crypter struct {
	// Rand supplies the 16 random bytes that begin every message Encrypt
	// seals. Nil means crypto/rand.Reader. Set it, if at all, before the
	// Crypter is shared; tests set it to make ciphertexts reproducible.
	Rand io.Reader

	token     string
	receiveID string
	block     cipher.Block
	// iv is the first half of the key, as WXBizMsgCrypt fixes it. A fixed IV
	// would make equal messages encrypt equally; the random prefix, which
	// is the first plaintext block, does the IV's job instead.
	iv []byte
}

// NewCrypter returns a Crypter for token, encodingAESKey and receiveID.
//
// The token must not be empty. The encodingAESKey must be the 43 characters
// WeChat's console shows. The receiveID is the id WeChat seals into each
// message and Decrypt insists on:
//
//   - Official Account or Mini Program: its appid;
//   - Open Platform third-party platform: the component appid;
//   - WeCom application: the corpid;
//   - WeCom suite: the suite id;
//   - WeCom app of an individually owned third party: "" (WeCom seals an
//     empty receive id there, and an empty receiveID accepts only that).
//
// Errors wrap ErrKey and say what is wrong without quoting the secret.
func NewCrypter(token, encodingAESKey, receiveID string) (*Crypter, error) {
	if token == "" {
		return nil, fmt.Errorf("%w: token is empty", ErrKey)
	}
	key, err := decodeAESKey(encodingAESKey)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		// Unreachable for a 32-byte key; kept so a change above cannot
		// turn into a nil block.
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	return &Crypter{
		token:     token,
		receiveID: receiveID,
		block:     block,
		iv:        key[:aes.BlockSize:aes.BlockSize],
	}, nil
}

// decodeAESKey turns an EncodingAESKey into the 32-byte AES-256 key.
func decodeAESKey(s string) ([]byte, error) {
	if strings.TrimSpace(s) != s {
		return nil, fmt.Errorf("%w: encodingAESKey has leading or trailing whitespace", ErrKey)
	}
	if len(s) != keyLength {
		return nil, fmt.Errorf("%w: encodingAESKey has %d characters, want %d", ErrKey, len(s), keyLength)
	}
	// Not StdEncoding.Strict(): the last character of a key carries two
	// unused bits that Tencent leaves nonzero (both of its sample keys do)
	// and ignores, so strict decoding would reject real keys.
	key, err := base64.StdEncoding.DecodeString(s + "=")
	if err != nil {
		var at base64.CorruptInputError
		if errors.As(err, &at) {
			return nil, fmt.Errorf("%w: encodingAESKey is not base64 (bad character at offset %d)", ErrKey, int64(at))
		}
		return nil, fmt.Errorf("%w: encodingAESKey is not base64", ErrKey)
	}
	if len(key) != 32 {
		// A key ending in "=" decodes, but to fewer bytes.
		return nil, fmt.Errorf("%w: encodingAESKey decodes to %d bytes, want 32", ErrKey, len(key))
	}
	return key, nil
}

// ready reports whether c was built by NewCrypter, so that a zero or nil
// Crypter fails with an error instead of a nil-pointer panic.
func (c *Crypter) ready() error {
	if c == nil || c.block == nil {
		return fmt.Errorf("%w: Crypter was not made by NewCrypter", ErrKey)
	}
	return nil
}

// Encrypt seals msg for the Crypter's receive id and returns the base64
// ciphertext, the value of an Encrypt element. Sixteen bytes from Rand make
// each ciphertext different even for equal messages.
func (c *Crypter) Encrypt(msg []byte) (string, error) {
	if err := c.ready(); err != nil {
		return "", err
	}
	r := c.Rand
	if r == nil {
		r = rand.Reader
	}
	var prefix [prefixLen]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		return "", fmt.Errorf("callback: reading random prefix: %w", err)
	}
	return c.encryptWithRandom(prefix[:], msg)
}

// encryptWithRandom is Encrypt with the random prefix given, which makes the
// output deterministic; Tencent's published test vector needs exactly that.
func (c *Crypter) encryptWithRandom(prefix, msg []byte) (string, error) {
	if len(prefix) != prefixLen {
		return "", fmt.Errorf("callback: random prefix is %d bytes, want %d", len(prefix), prefixLen)
	}
	if uint64(len(msg)) > math.MaxUint32 {
		return "", fmt.Errorf("%w: message is %d bytes, more than a 4-byte length can frame", ErrTooLarge, len(msg))
	}
	size := headerLen + len(msg) + len(c.receiveID)
	pad := padBlock - size%padBlock // 1..32: a full block when size is aligned
	buf := make([]byte, size+pad)
	copy(buf, prefix)
	binary.BigEndian.PutUint32(buf[prefixLen:headerLen], uint32(len(msg)))
	copy(buf[headerLen:], msg)
	copy(buf[headerLen+len(msg):], c.receiveID)
	for i := size; i < len(buf); i++ {
		buf[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(c.block, c.iv).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf), nil
}

// Decrypt opens the base64 ciphertext encrypt and returns the message,
// provided it was sealed for the Crypter's receive id.
//
// Decrypt does not authenticate: CBC ciphertext is malleable and
// WXBizMsgCrypt carries no MAC, so a forger can alter a message in ways
// Decrypt cannot detect. Call it only on a ciphertext whose msg_signature
// has been verified, as DecryptMessage and VerifyURL do. For the same reason
// it makes no effort to hide which check failed.
//
// Errors wrap ErrCiphertext, ErrPadding, ErrMalformed or ErrReceiveID.
// Decrypt never panics, whatever the input.
func (c *Crypter) Decrypt(encrypt string) ([]byte, error) {
	if err := c.ready(); err != nil {
		return nil, err
	}
	msg, receiveID, err := c.open(encrypt)
	if err != nil {
		return nil, err
	}
	if string(receiveID) != c.receiveID {
		return nil, fmt.Errorf("%w: sealed for %.64q, not %q", ErrReceiveID, receiveID, c.receiveID)
	}
	return msg, nil
}

// open decrypts encrypt and returns the message and the receive id it was
// sealed for, unchecked. The Crypter is ready.
func (c *Crypter) open(encrypt string) (msg, receiveID []byte, err error) {
	buf, err := base64.StdEncoding.DecodeString(encrypt)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: not base64: %v", ErrCiphertext, err)
	}
	if len(buf) == 0 || len(buf)%padBlock != 0 {
		return nil, nil, fmt.Errorf("%w: %d bytes, want a positive multiple of %d", ErrCiphertext, len(buf), padBlock)
	}
	cipher.NewCBCDecrypter(c.block, c.iv).CryptBlocks(buf, buf)
	content, err := unpad(buf)
	if err != nil {
		return nil, nil, err
	}
	return unframe(content)
}

// unpad strips PKCS#7 padding to a 32-byte block from b, whose length is a
// positive multiple of 32.
func unpad(b []byte) ([]byte, error) {
	n := int(b[len(b)-1])
	if n < 1 || n > padBlock {
		return nil, fmt.Errorf("%w: pad length %d, want 1 to %d", ErrPadding, n, padBlock)
	}
	for _, v := range b[len(b)-n:] {
		if int(v) != n {
			return nil, fmt.Errorf("%w: pad bytes disagree with pad length %d", ErrPadding, n)
		}
	}
	return b[:len(b)-n], nil
}

// unframe splits an unpadded plaintext into the message and the receive id
// after it, checking the length field against what is actually there.
func unframe(b []byte) (msg, receiveID []byte, err error) {
	if len(b) < headerLen {
		return nil, nil, fmt.Errorf("%w: plaintext is %d bytes, shorter than its %d-byte header", ErrMalformed, len(b), headerLen)
	}
	n := binary.BigEndian.Uint32(b[prefixLen:headerLen])
	rest := b[headerLen:]
	if uint64(n) > uint64(len(rest)) {
		return nil, nil, fmt.Errorf("%w: length field %d exceeds the %d bytes that follow", ErrMalformed, n, len(rest))
	}
	// The capacity limit keeps a caller's append from overwriting the
	// receive id in the shared buffer.
	return rest[:n:n], rest[n:], nil
}

// String describes the Crypter by its receive id alone, so that printing one
// never reveals the token or the key.
func (c *Crypter) String() string {
	if c == nil {
		return "callback.Crypter(nil)"
	}
	return fmt.Sprintf("callback.Crypter{receiveID: %q}", c.receiveID)
}

// GoString is String, so that %#v redacts the secrets as well.
func (c *Crypter) GoString() string { return c.String() }

// LogValue logs the Crypter as its receive id alone, keeping the token and
// key out of logs.
func (c *Crypter) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(slog.String("receive_id", c.receiveID))
}
