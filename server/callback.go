package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/wxtoken/wxtoken/callback"
	"github.com/wxtoken/wxtoken/component"
)

// Callback is one endpoint WeChat calls: an Official Account's or WeCom
// application's server URL (verification), or a third-party platform's
// authorization-event URL (pushes).
type Callback struct {
	// Kind is the credential's kind, one of Config.CallbackModes; the URL
	// is /callback/{kind}/{id}.
	Kind, ID string
	// Token is the message token configured at WeChat.
	Token string
	// Crypter opens encrypted messages; nil for a plain-mode mp endpoint.
	Crypter *callback.Crypter
	// Handler acts on a component's decrypted pushes.
	Handler EventHandler
	// Messages takes the messages and events of an mp or wecom, or of a
	// platform and its authorizers (the message gateway); nil: they are
	// answered "success" and dropped.
	Messages MessageHandler
}

// MessageHandler takes the decrypted messages WeChat pushes to a
// credential's callback URL.
type MessageHandler interface {
	// Receive returns once the message is stored durably for delivery,
	// with the passive reply's plain XML, or nil for none. An error
	// wrapping gateway.ErrMessage means the plaintext is no message; any
	// other means nothing was stored.
	// authorizer is the appid of a platform's authorizer the message is
	// for, "" for the credential's own.
	Receive(ctx context.Context, credential, authorizer string, plain []byte) (reply []byte, err error)
}

// EventHandler acts on a decrypted push; it returns once what the push
// carried is stored durably.
type EventHandler interface {
	Handle(ctx context.Context, ev callback.Event) error
}

// Errors of callback requests.
var (
	errSignature = errors.New("signature does not match")
	errReplay    = errors.New("nonce already used: a replayed push")
)

type staleError struct{ skew time.Duration }

func (e *staleError) Error() string {
	return fmt.Sprintf("timestamp is %s away from our clock, beyond the allowed window", e.skew.Round(time.Second))
}

func callbackKey(kind, id string) string { return kind + "/" + id }

// checkTime refuses a missing, malformed or out-of-window timestamp.
func (s *Server) checkTime(ts string) error {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return &badRequest{"timestamp must be Unix seconds"}
	}
	if skew := time.Since(time.Unix(sec, 0)); skew.Abs() > s.maxSkew {
		return &staleError{skew}
	}
	return nil
}

func (s *Server) lookupCallback(r *http.Request, kind string) (*Callback, error) {
	cb := s.callbacks[callbackKey(kind, r.PathValue("id"))]
	if cb == nil {
		return nil, errNotFound
	}
	return cb, nil
}

// verifyURL answers WeChat's server URL verification: plain mode for mp
// (echo echostr when the signature matches), encrypted for wecom (answer
// the decrypted echostr).
func (s *Server) verifyURL(mode CallbackMode) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		cb, err := s.lookupCallback(r, mode.Kind)
		if err != nil {
			return err
		}
		q := r.URL.Query()
		ts, nonce, echo := q.Get("timestamp"), q.Get("nonce"), q.Get("echostr")
		if err := s.checkTime(ts); err != nil {
			return err
		}
		var out []byte
		switch {
		case mode.Encrypted && mode.VerifyAnyReceiver:
			if out, err = cb.Crypter.VerifyURLAnyReceiver(q.Get("msg_signature"), ts, nonce, echo); err != nil {
				return err
			}
		case mode.Encrypted:
			if out, err = cb.Crypter.VerifyURL(q.Get("msg_signature"), ts, nonce, echo); err != nil {
				return err
			}
		default:
			if !callback.VerifySignature(cb.Token, ts, nonce, q.Get("signature")) {
				return errSignature
			}
			out = []byte(echo)
		}
		writeText(w, out)
		return nil
	}
}

// receive takes a POST from WeChat: it checks the timestamp window and the
// signature, decrypts where encrypted, refuses replayed nonces, hands a
// component's event to its handler, and answers "success" only once the
// handler has stored what the push carried.
func (s *Server) receive(mode CallbackMode) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		cb, err := s.lookupCallback(r, mode.Kind)
		if err != nil {
			return err
		}
		// An authorizer's message comes to the platform's "$APPID$"
		// URL, sealed with the platform's keys; the appid is in the
		// path, which no signature covers.
		authorizer := r.PathValue("appid")
		if authorizer != "" && !authorizerPattern.MatchString(authorizer) {
			return &badRequest{"authorizer appid: want [A-Za-z0-9_-]{1,64}"}
		}
		q := r.URL.Query()
		ts, nonce := q.Get("timestamp"), q.Get("nonce")
		if err := s.checkTime(ts); err != nil {
			return err
		}
		body, err := readBody(w, r, callback.MaxBodySize)
		if err != nil {
			return err
		}
		var plain []byte
		encrypted := cb.Crypter != nil && (mode.Encrypted || q.Get("encrypt_type") == "aes")
		switch {
		case encrypted:
			if plain, err = cb.Crypter.DecryptMessage(q.Get("msg_signature"), ts, nonce, body); err != nil {
				return err
			}
		case !callback.VerifySignature(cb.Token, ts, nonce, q.Get("signature")):
			return errSignature
		}
		if plain == nil {
			plain = body // plain mode
		}
		key := replayKey(cb, authorizer, ts, nonce, q.Get("msg_signature"), q.Get("signature"))
		// A timestamp may be maxSkew old or maxSkew ahead: the push
		// would pass the time check for twice that.
		fresh, err := s.claims.Claim(r.Context(), key, 2*s.maxSkew)
		if err != nil {
			// Accepting it unchecked would let a replay through; WeChat
			// delivers a push again when it is not acknowledged.
			return &replayUnchecked{err}
		}
		if !fresh {
			if cb.Messages != nil {
				// WeChat may retry a slow push unchanged. The gateway
				// remembers message ids for at least this claim's
				// window, so the repeat gets the first one's answer
				// and stores nothing; its claim is not ours to drop.
				return s.forward(r.Context(), w, cb, authorizer, plain, encrypted, ts, nonce, "")
			}
			return errReplay
		}
		if cb.Handler != nil && authorizer == "" {
			ev, err := callback.ParseEvent(plain)
			if err != nil {
				s.unclaim(key)
				return err
			}
			if err := cb.Handler.Handle(r.Context(), ev); err != nil {
				s.unclaim(key) // WeChat delivers it again
				if errors.Is(err, component.ErrWrongPlatform) || errors.Is(err, component.ErrInvalidImport) {
					// The push itself is wrong: delivering it again
					// would not help, and the answer should not say so.
					return err
				}
				return &notStored{err}
			}
		}
		if cb.Messages != nil {
			return s.forward(r.Context(), w, cb, authorizer, plain, encrypted, ts, nonce, key)
		}
		writeText(w, []byte("success"))
		return nil
	}
}

// replayKey names a push for its claim: the endpoint, then a digest of
// what WeChat signs it with. A replay carries the same timestamp, nonce
// and signature (they are all a recorder has); the digest bounds the key
// whatever the query holds.
func replayKey(cb *Callback, authorizer, ts, nonce, msgSignature, signature string) string {
	h := sha256.Sum256([]byte(ts + "\n" + nonce + "\n" + msgSignature + "\n" + signature))
	id := cb.ID
	if authorizer != "" {
		id += "/" + authorizer
	}
	return "push/" + cb.Kind + "/" + id + "/" + hex.EncodeToString(h[:])
}

// authorizerPattern is what an authorizer's appid in a callback path may
// look like.
var authorizerPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// unclaim drops the claim of a push that was refused after it was
// claimed, so that WeChat's next delivery of it is not taken for a replay.
func (s *Server) unclaim(key string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.claims.Unclaim(ctx, key); err != nil {
		s.log.Warn("push refused, but its claim stays: WeChat's next delivery of it will be taken for a replay",
			"key", key, "err", err)
	}
}

// replayUnchecked is a push that could not be checked against those
// already accepted, because the store could not be reached.
type replayUnchecked struct{ err error }

func (e *replayUnchecked) Error() string {
	return "push not checked for replay, deliver again: " + e.err.Error()
}
func (e *replayUnchecked) Unwrap() error { return e.err }

func writeText(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}
