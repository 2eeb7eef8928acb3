package token

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Records are stored in a compact binary form: a platform keeps 100,000
// of them, every start reads them all, and the embedded store maps its
// file into memory, so each byte of a record is resident many times
// over. As JSON a typical authorizer's record took about 480 bytes, most
// of them field names and RFC 3339 times; here each field is a tag byte
// and its value, times are varints of Unix nanoseconds, and zero fields
// are left out. Records written as JSON by earlier versions are still
// read (they start with '{'); each is rewritten in this form at its next
// write.
//
// Layout: recordFormat, then fields in any order, each a tag byte and:
// strings as a uvarint length and bytes, times as a varint of Unix
// nanoseconds, counters as uvarints, the flags as one byte of bits, the
// cause as a length-prefixed JSON object (it is rare, and shown as JSON).

const recordFormat = 0x01

// Field tags. Never reuse a number: a record outlives the version that
// wrote it.
const (
	tagToken = iota + 1
	tagIssuedAt
	tagExpiresAt
	tagRefreshAt
	tagDay
	tagFetches
	tagForced
	tagLastFetch
	tagLastForce
	tagCause
	tagBlockedUntil
	tagFingerprint
	tagRetryAt
	tagFetching
	tagFlags
	tagChecked
	tagState
	tagOwner
	tagKind
)

// Bits of tagFlags.
const (
	flagReported = 1 << iota
	flagRepeats
	flagRevoked
)

func (r *record) encode() []byte {
	b := make([]byte, 0, 64+len(r.Token)+len(r.State)+len(r.Fingerprint)+len(r.Owner)+len(r.Kind))
	b = append(b, recordFormat)
	str := func(tag byte, s string) {
		if s != "" {
			b = append(b, tag)
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
	}
	tm := func(tag byte, t time.Time) {
		if !t.IsZero() {
			b = append(b, tag)
			b = binary.AppendVarint(b, t.UnixNano())
		}
	}
	num := func(tag byte, n int) {
		if n > 0 {
			b = append(b, tag)
			b = binary.AppendUvarint(b, uint64(n))
		}
	}
	str(tagToken, r.Token)
	tm(tagIssuedAt, r.IssuedAt)
	tm(tagExpiresAt, r.ExpiresAt)
	tm(tagRefreshAt, r.RefreshAt)
	str(tagDay, r.Day)
	num(tagFetches, r.Fetches)
	num(tagForced, r.Forced)
	tm(tagLastFetch, r.LastFetch)
	tm(tagLastForce, r.LastForce)
	if r.Cause != nil {
		c, err := json.Marshal(r.Cause)
		if err != nil {
			panic(err) // plain fields always encode
		}
		str(tagCause, string(c))
	}
	tm(tagBlockedUntil, r.BlockedUntil)
	str(tagFingerprint, r.Fingerprint)
	tm(tagRetryAt, r.RetryAt)
	tm(tagFetching, r.Fetching)
	var flags byte
	if r.Reported {
		flags |= flagReported
	}
	if r.Repeats {
		flags |= flagRepeats
	}
	if r.Revoked {
		flags |= flagRevoked
	}
	if flags != 0 {
		b = append(b, tagFlags, flags)
	}
	tm(tagChecked, r.Checked)
	str(tagState, r.State)
	str(tagOwner, r.Owner)
	str(tagKind, r.Kind)
	return b
}

var errCorrupt = errors.New("token: stored record is corrupt")

// decodeBinary decodes a record encode wrote into r.
func decodeBinary(b []byte, r *record) error {
	if len(b) == 0 || b[0] != recordFormat {
		return fmt.Errorf("token: stored record has unknown format %#x", b[:min(len(b), 1)])
	}
	b = b[1:]
	for len(b) > 0 {
		tag := b[0]
		b = b[1:]
		switch tag {
		case tagToken, tagDay, tagCause, tagFingerprint, tagState, tagOwner, tagKind:
			n, k := binary.Uvarint(b)
			if k <= 0 || uint64(len(b)-k) < n {
				return errCorrupt
			}
			s := string(b[k : k+int(n)])
			b = b[k+int(n):]
			switch tag {
			case tagToken:
				r.Token = s
			case tagDay:
				r.Day = s
			case tagFingerprint:
				r.Fingerprint = s
			case tagState:
				r.State = s
			case tagOwner:
				r.Owner = s
			case tagKind:
				r.Kind = s
			case tagCause:
				r.Cause = new(Cause)
				if err := json.Unmarshal([]byte(s), r.Cause); err != nil {
					return errCorrupt
				}
			}
		case tagIssuedAt, tagExpiresAt, tagRefreshAt, tagLastFetch, tagLastForce, tagBlockedUntil, tagRetryAt, tagFetching, tagChecked:
			v, k := binary.Varint(b)
			if k <= 0 {
				return errCorrupt
			}
			b = b[k:]
			t := time.Unix(0, v)
			switch tag {
			case tagIssuedAt:
				r.IssuedAt = t
			case tagExpiresAt:
				r.ExpiresAt = t
			case tagRefreshAt:
				r.RefreshAt = t
			case tagLastFetch:
				r.LastFetch = t
			case tagLastForce:
				r.LastForce = t
			case tagBlockedUntil:
				r.BlockedUntil = t
			case tagRetryAt:
				r.RetryAt = t
			case tagFetching:
				r.Fetching = t
			case tagChecked:
				r.Checked = t
			}
		case tagFetches, tagForced:
			v, k := binary.Uvarint(b)
			if k <= 0 || v > 1<<31 {
				return errCorrupt
			}
			b = b[k:]
			if tag == tagFetches {
				r.Fetches = int(v)
			} else {
				r.Forced = int(v)
			}
		case tagFlags:
			if len(b) == 0 {
				return errCorrupt
			}
			f := b[0]
			b = b[1:]
			r.Reported, r.Repeats, r.Revoked = f&flagReported != 0, f&flagRepeats != 0, f&flagRevoked != 0
		default:
			return fmt.Errorf("token: stored record has unknown field %d (written by a newer version?)", tag)
		}
	}
	return nil
}

// Stored is what a stored token record says, for tools and tests that
// read the store directly.
type Stored struct {
	Token, State, Owner, Kind string
	ExpiresAt                 time.Time
	Revoked                   bool
}

// DecodeStored decodes a value stored under "token/<id>", in either form.
func DecodeStored(b []byte) (Stored, error) {
	r, err := decodeRecord(b)
	return Stored{Token: r.Token, State: r.State, Owner: r.Owner, Kind: r.Kind, ExpiresAt: r.ExpiresAt, Revoked: r.Revoked}, err
}
