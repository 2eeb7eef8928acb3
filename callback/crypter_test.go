package callback

import (
	"bytes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

func TestNewCrypterRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name, token, key, wantText string
	}{
		{"empty token", "", oaKey, "token is empty"},
		{"short key", oaToken, oaKey[:42], "has 42 characters, want 43"},
		{"long key", oaToken, oaKey + "H", "has 44 characters, want 43"},
		{"padded key", oaToken, oaKey + "=", "has 44 characters, want 43"},
		{"whitespace", oaToken, oaKey + "\n", "whitespace"},
		{"not base64", oaToken, "*" + oaKey[1:], "bad character at offset 0"},
		{"url alphabet", oaToken, oaKey[:10] + "-" + oaKey[11:], "bad character at offset 10"},
		{"decodes short", oaToken, oaKey[:42] + "=", "decodes to 31 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewCrypter(tt.token, tt.key, oaAppID)
			if !errors.Is(err, ErrKey) {
				t.Fatalf("NewCrypter = %v, %v; want ErrKey", c, err)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not say %q", err, tt.wantText)
			}
			if len(tt.key) > 8 && strings.Contains(err.Error(), tt.key[1:9]) {
				t.Errorf("error %q quotes the key", err)
			}
		})
	}
}

func TestZeroCrypterFailsCleanly(t *testing.T) {
	for name, c := range map[string]*Crypter{"nil": nil, "zero": {}} {
		t.Run(name, func(t *testing.T) {
			if _, err := c.Decrypt(oaEncrypt); !errors.Is(err, ErrKey) {
				t.Errorf("Decrypt = %v, want ErrKey", err)
			}
			if _, err := c.Encrypt([]byte("x")); !errors.Is(err, ErrKey) {
				t.Errorf("Encrypt = %v, want ErrKey", err)
			}
			if _, err := c.DecryptMessage(oaMsgSignature, oaTimestamp, oaNonce, []byte(oaBody)); !errors.Is(err, ErrKey) {
				t.Errorf("DecryptMessage = %v, want ErrKey", err)
			}
			if _, err := c.VerifyURL(oaMsgSignature, oaTimestamp, oaNonce, oaEncrypt); !errors.Is(err, ErrKey) {
				t.Errorf("VerifyURL = %v, want ErrKey", err)
			}
		})
	}
}

func TestCrypterRedactsSecrets(t *testing.T) {
	c := newCrypter(t, oaToken, oaKey, oaAppID)
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("configured", "crypter", c)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), logged.String()} {
		if strings.Contains(s, oaToken) || strings.Contains(s, oaKey[:16]) {
			t.Errorf("%q reveals a secret", s)
		}
		if !strings.Contains(s, oaAppID) {
			t.Errorf("%q does not name the receive id", s)
		}
	}
}

func TestEncryptReportsRandomFailure(t *testing.T) {
	c := newCrypter(t, oaToken, oaKey, oaAppID)
	c.Rand = iotest.ErrReader(errors.New("entropy exhausted"))
	if _, err := c.Encrypt([]byte("x")); err == nil || !strings.Contains(err.Error(), "entropy exhausted") {
		t.Errorf("Encrypt = %v, want the reader's error", err)
	}
	c.Rand = bytes.NewReader(make([]byte, prefixLen-1))
	if _, err := c.Encrypt([]byte("x")); err == nil {
		t.Error("Encrypt succeeded with a 15-byte random prefix")
	}
}

// TestEncryptDecryptRoundTrip checks Decrypt(Encrypt(m)) == m over random
// messages and receive ids, with lengths dense around the 32-byte padding
// boundaries where an off-by-one would hide.
func TestEncryptDecryptRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		receiveID := string(randomBytes(r, r.IntN(40)))
		msg := randomBytes(r, randomLength(r))
		c := newCrypter(t, "token", randomKey(r), receiveID)
		c.Rand = rand.NewChaCha8(seed(r))
		enc, err := c.Encrypt(msg)
		if err != nil {
			t.Fatalf("#%d Encrypt: %v", i, err)
		}
		raw, err := base64.StdEncoding.DecodeString(enc)
		if err != nil || len(raw)%padBlock != 0 {
			t.Fatalf("#%d ciphertext is %d bytes (%v), want a multiple of %d", i, len(raw), err, padBlock)
		}
		got, err := c.Decrypt(enc)
		if err != nil {
			t.Fatalf("#%d Decrypt(Encrypt(%d bytes), receive id %q): %v", i, len(msg), receiveID, err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("#%d Decrypt(Encrypt(m)) = %q, want %q", i, got, msg)
		}
	}
}

// A Crypter is documented as safe for concurrent use; under -race this
// checks that nothing in it is written after NewCrypter.
func TestCrypterConcurrentUse(t *testing.T) {
	c := newCrypter(t, oaToken, oaKey, oaAppID)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				msg := fmt.Appendf(nil, "goroutine %d message %d", g, i)
				body, sig, err := c.SealRequest(Recipient{AppID: oaAppID}, msg, oaTimestamp, oaNonce)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := c.DecryptMessage(sig, oaTimestamp, oaNonce, body)
				if err != nil || !bytes.Equal(got, msg) {
					t.Errorf("round trip = %q, %v; want %q", got, err, msg)
					return
				}
			}
		})
	}
	wg.Wait()
}

// Equal messages must not encrypt equally: the random prefix stands in for
// the IV that WXBizMsgCrypt fixes.
func TestEncryptIsRandomized(t *testing.T) {
	c := newCrypter(t, oaToken, oaKey, oaAppID)
	a, err1 := c.Encrypt([]byte(javaMsg))
	b, err2 := c.Encrypt([]byte(javaMsg))
	if err1 != nil || err2 != nil {
		t.Fatalf("Encrypt: %v, %v", err1, err2)
	}
	if a == b {
		t.Errorf("two encryptions of one message are both %s", a)
	}
}

func TestDecryptRejectsBadInput(t *testing.T) {
	c := newCrypter(t, oaToken, oaKey, oaAppID)
	// framed seals prefix | length | body | pad; the cases below keep
	// 20 + len(body) + len(pad) at 64 bytes.
	framed := func(length uint32, body string, pad []byte) string {
		b := []byte("0123456789abcdef")
		b = binary.BigEndian.AppendUint32(b, length)
		b = append(b, body...)
		return sealRaw(t, c, append(b, pad...))
	}
	goodBody := "hello" + oaAppID // 23 bytes, so 21 bytes of padding
	goodPad := bytes.Repeat([]byte{21}, 21)
	disagreeing := bytes.Clone(goodPad)
	disagreeing[3] = 20
	otherKey := newCrypter(t, oaToken, weComKey, oaAppID)
	otherKeyEncrypt, err := otherKey.Encrypt([]byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	javaCipher, _ := base64.StdEncoding.DecodeString(javaEncrypt)

	tests := []struct {
		name    string
		encrypt string
		want    []error // one, except where a wrong key makes the failure random
	}{
		{"empty", "", []error{ErrCiphertext}},
		{"not base64", "not*base64!", []error{ErrCiphertext}},
		{"bad base64 padding", javaEncrypt[:len(javaEncrypt)-1], []error{ErrCiphertext}},
		{"truncated bytes", base64.StdEncoding.EncodeToString(javaCipher[:len(javaCipher)-5]), []error{ErrCiphertext}},
		{"half a padding block", base64.StdEncoding.EncodeToString(javaCipher[:48]), []error{ErrCiphertext}},
		{"pad length 0", framed(5, goodBody, make([]byte, 21)), []error{ErrPadding}},
		{"pad length 33", framed(5, goodBody, bytes.Repeat([]byte{33}, 21)), []error{ErrPadding}},
		{"pad bytes disagree", framed(5, goodBody, disagreeing), []error{ErrPadding}},
		{"pad longer than written", framed(5, goodBody, bytes.Repeat([]byte{22}, 21)), []error{ErrPadding}},
		{"shorter than header", sealRaw(t, c, append([]byte("0123456789abcdef"), bytes.Repeat([]byte{16}, 16)...)), []error{ErrMalformed}},
		{"length past end", framed(1000, goodBody, goodPad), []error{ErrMalformed}},
		{"length field max", framed(0xFFFFFFFF, goodBody, goodPad), []error{ErrMalformed}},
		{"length one past end", framed(24, goodBody, goodPad), []error{ErrMalformed}},
		{"other receive id", framed(5, "hello"+javaAppID, goodPad), []error{ErrReceiveID}},
		{"receive id prefix", framed(6, goodBody, goodPad), []error{ErrReceiveID}},
		{"wrong key", otherKeyEncrypt, []error{ErrPadding, ErrMalformed, ErrReceiveID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Decrypt(tt.encrypt)
			if err == nil {
				t.Fatalf("Decrypt accepted it as %q", got)
			}
			if !isAny(err, tt.want) {
				t.Errorf("Decrypt error %v, want one of %v", err, tt.want)
			}
		})
	}
}

func TestDecryptAcceptsPaddingExtremes(t *testing.T) {
	c := newCrypter(t, oaToken, oaKey, "")
	for _, n := range []int{0, 11, 12, 13, 43, 44, 45} {
		msg := bytes.Repeat([]byte{'m'}, n)
		enc, err := c.Encrypt(msg)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := c.Decrypt(enc); err != nil || !bytes.Equal(got, msg) {
			t.Errorf("%d-byte message: Decrypt = %q, %v", n, got, err)
		}
	}
}

// sealRaw CBC-encrypts an already framed and padded plaintext with c's key,
// to build ciphertexts that Encrypt would never produce.
func sealRaw(t testing.TB, c *Crypter, plain []byte) string {
	t.Helper()
	if len(plain)%padBlock != 0 {
		t.Fatalf("sealRaw: %d bytes is not a multiple of %d", len(plain), padBlock)
	}
	out := make([]byte, len(plain))
	cipher.NewCBCEncrypter(c.block, c.iv).CryptBlocks(out, plain)
	return base64.StdEncoding.EncodeToString(out)
}

func isAny(err error, targets []error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// randomLength favours lengths near multiples of 32, then anything to 4 KiB.
func randomLength(r *rand.Rand) int {
	if r.IntN(2) == 0 {
		return max(0, 32*r.IntN(8)+r.IntN(5)-2)
	}
	return r.IntN(4 << 10)
}

func randomKey(r *rand.Rand) string {
	return base64.StdEncoding.EncodeToString(randomBytes(r, 32))[:keyLength]
}

func seed(r *rand.Rand) [32]byte {
	var s [32]byte
	copy(s[:], randomBytes(r, 32))
	return s
}
