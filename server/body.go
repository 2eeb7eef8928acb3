package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
)

// readBody reads the request body, at most limit bytes. A body over the
// limit is the *http.MaxBytesError the error mapping turns into 413; any
// other failure to read is the client's (a body cut short, a connection
// closed or too slow), never an upstream one: it is a *bodyError.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err == nil {
		return b, nil
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return nil, err
	}
	return nil, &bodyError{err}
}

// bodyError is a request body that could not be read: 408 when the
// client was too slow for the server's read timeout, 400 otherwise. It is
// the client's failure, so it is not logged as ours.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return "request body could not be read: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// timeout reports whether the read gave up on a slow client.
func (e *bodyError) timeout() bool {
	ne, ok := errors.AsType[net.Error](e.err)
	return ok && ne.Timeout()
}

// decodeJSON reads one JSON object of at most limit bytes into v.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	body, err := readBody(w, r, limit)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return &badRequest{"request body is empty: want a JSON object"}
		}
		return &badRequest{"malformed JSON: " + err.Error()}
	}
	if dec.More() {
		return &badRequest{"malformed JSON: trailing data after the object"}
	}
	return nil
}
