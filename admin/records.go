package admin

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/wxtoken/wxtoken/config"
)

// Store keys. Everything the admin API writes is under "admin/", which
// every instance watches.
const (
	prefix           = "admin/"
	credentialPrefix = prefix + "credential/"
	clientPrefix     = prefix + "client/"
	auditPrefix      = prefix + "audit/"
	quotaPrefix      = prefix + "quota/"
)

// storedCredential is a credential added at run time.
type storedCredential struct {
	Credential config.Credential `json:"credential"`
	Disabled   bool              `json:"disabled,omitempty"`
	Created    time.Time         `json:"created"`
	Updated    time.Time         `json:"updated"`
	By         string            `json:"by"`
}

// fingerprint tells whether a stored credential's settings changed since
// they were applied: a change replaces the running credential.
func (sc *storedCredential) fingerprint() string {
	b, _ := json.Marshal(sc.Credential)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// storedClient is a client added at run time. Only the SHA-256 of its key
// is kept; the key is shown once, when it is made.
type storedClient struct {
	Name     string        `json:"name"`
	KeyHash  string        `json:"key_sha256"`
	Previous []previousKey `json:"previous,omitempty"`
	Allow    []string      `json:"allow"`
	Import   []string      `json:"import,omitempty"`
	SDK      string        `json:"sdk,omitempty"`
	Disabled bool          `json:"disabled,omitempty"`
	Created  time.Time     `json:"created"`
	Updated  time.Time     `json:"updated"`
	By       string        `json:"by"`
}

// previousKey is a rotated-out key, still accepted until Until so that
// the client's servers can move to the new one.
type previousKey struct {
	KeyHash string    `json:"key_sha256"`
	Until   time.Time `json:"until"`
}

// quotaCount counts the clear_quota calls made for one account in one
// month: WeChat allows 10 and answers 48006 past that.
type quotaCount struct {
	Calls int `json:"calls"`
}

func hashHex(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

func unhex(s string) [32]byte {
	var h [32]byte
	hex.Decode(h[:], []byte(s))
	return h
}
