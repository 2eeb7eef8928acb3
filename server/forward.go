package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/wxtoken/wxtoken/gateway"
)

// forward hands a checked push to the message gateway and answers WeChat
// with its passive reply, encrypted when the push was (WeChat decrypts
// the reply of a safe-mode push with the same keys), or "success". claim
// is the push's replay claim, dropped if the gateway refuses it; "" for
// a push claimed by an earlier request.
func (s *Server) forward(ctx context.Context, w http.ResponseWriter, cb *Callback, authorizer string, plain []byte, encrypted bool, ts, nonce, claim string) error {
	reply, err := cb.Messages.Receive(ctx, cb.ID, authorizer, plain)
	if err != nil {
		if claim != "" {
			s.unclaim(claim) // WeChat delivers it again
		}
		if errors.Is(err, gateway.ErrMessage) {
			return &badRequest{err.Error()}
		}
		return &notStored{err}
	}
	return s.answer(w, cb, reply, encrypted, ts, nonce)
}

// answer answers a push with reply, or "success" when reply is nil.
func (s *Server) answer(w http.ResponseWriter, cb *Callback, reply []byte, encrypted bool, ts, nonce string) error {
	var err error
	if reply == nil {
		writeText(w, []byte("success"))
		return nil
	}
	if encrypted {
		// The reply envelope is signed over the request's own timestamp
		// and nonce, as Tencent's samples do.
		if reply, err = cb.Crypter.EncryptMessage(reply, ts, nonce); err != nil {
			s.log.Warn("passive reply not encrypted; answering success", "credential", cb.ID, "err", err)
			writeText(w, []byte("success"))
			return nil
		}
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(reply)
	return nil
}
