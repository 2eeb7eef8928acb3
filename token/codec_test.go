package token

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// fullRecord has every field set, as an authorizer's can be.
func fullRecord() record {
	at := func(s int64) time.Time { return time.Unix(1764750000+s, 123456789) }
	return record{
		Token:    "89_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
		IssuedAt: at(0), ExpiresAt: at(7200), RefreshAt: at(5760),
		Day: "2026-12-03", Fetches: 17, Forced: 2, LastFetch: at(0), LastForce: at(-60),
		Cause:        &Cause{Class: "retry", ErrCode: -1, Message: "system busy", Since: at(-30).UTC(), Failures: 3},
		BlockedUntil: at(3600), Fingerprint: "0123456789abcdef", RetryAt: at(10), Fetching: at(1),
		Reported: true, Repeats: true, Revoked: true, Checked: at(2),
		State: "refreshtoken@@@ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", Owner: "plat", Kind: "authorizer",
	}
}

// equalRecords compares records field by field, times as instants.
func equalRecords(t *testing.T, got, want record) {
	t.Helper()
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range gv.NumField() {
		name := gv.Type().Field(i).Name
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		switch w := w.(type) {
		case time.Time:
			if !g.(time.Time).Equal(w) {
				t.Errorf("%s = %v, want %v", name, g, w)
			}
		case *Cause:
			if gc := g.(*Cause); (gc == nil) != (w == nil) || (w != nil && (gc.Class != w.Class || gc.ErrCode != w.ErrCode ||
				gc.Message != w.Message || !gc.Since.Equal(w.Since) || gc.Failures != w.Failures)) {
				t.Errorf("%s = %+v, want %+v", name, g, w)
			}
		default:
			if !reflect.DeepEqual(g, w) {
				t.Errorf("%s = %v, want %v", name, g, w)
			}
		}
	}
}

// Every field survives the binary form, an empty record too, and a
// record written as JSON by an earlier version reads the same.
func TestRecordCodec(t *testing.T) {
	for _, want := range []record{fullRecord(), {}, {Token: "t", ExpiresAt: time.Unix(0, 1)}} {
		b := want.encode()
		if b[0] != recordFormat {
			t.Fatalf("encoded record starts with %#x", b[0])
		}
		got, err := decodeRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		equalRecords(t, got, want)

		legacy, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err = decodeRecord(legacy)
		if err != nil {
			t.Fatal(err)
		}
		equalRecords(t, got, want)
	}
	full := fullRecord()
	full.Cause, full.BlockedUntil, full.Fingerprint, full.RetryAt, full.Fetching, full.Checked = nil, time.Time{}, "", time.Time{}, time.Time{}, time.Time{}
	full.Reported, full.Repeats, full.Revoked, full.Forced, full.LastForce = false, false, false, 0, time.Time{}
	legacy, _ := json.Marshal(full)
	t.Logf("a healthy authorizer's record: %d bytes, %d as JSON", len(full.encode()), len(legacy))
	if len(full.encode()) >= len(legacy)*2/3 {
		t.Errorf("binary record %d bytes, JSON %d: want it at most two thirds", len(full.encode()), len(legacy))
	}
	s, err := DecodeStored(full.encode())
	if err != nil || s.Token != full.Token || s.State != full.State || s.Owner != "plat" || !s.ExpiresAt.Equal(full.ExpiresAt) {
		t.Errorf("DecodeStored = %+v, %v", s, err)
	}
}

// A damaged record is an error, never a record with garbage in it, and
// never a panic: every prefix of a valid record, and every byte changed.
func TestRecordCodecCorrupt(t *testing.T) {
	fr := fullRecord()
	b := fr.encode()
	for n := 1; n < len(b); n++ {
		r, err := decodeRecord(b[:n])
		if err == nil && reflect.DeepEqual(r, fullRecord()) {
			t.Fatalf("a record cut at %d bytes decoded whole", n)
		}
	}
	for _, bad := range [][]byte{{}, {0x02}, {recordFormat, 0xff}, {recordFormat, tagToken, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		{recordFormat, tagToken, 10, 'a'}, {recordFormat, tagFlags}, {recordFormat, tagExpiresAt}, {recordFormat, tagCause, 1, '{'}} {
		if _, err := decodeRecord(bad); err == nil {
			t.Errorf("%x decoded without an error", bad)
		}
	}
}

func FuzzRecordCodec(f *testing.F) {
	fr := fullRecord()
	f.Add(fr.encode())
	f.Add([]byte{recordFormat})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil || len(b) == 0 || b[0] != recordFormat {
			return
		}
		// What decodes encodes to something that decodes the same.
		again, err := decodeRecord(r.encode())
		if err != nil {
			t.Fatalf("re-encoding %x: %v", b, err)
		}
		if !reflect.DeepEqual(hold(again), hold(r)) {
			t.Fatalf("%x: %+v, then %+v", b, r, again)
		}
	})
}

// BenchmarkDecodeRecord compares reading a healthy authorizer's record in
// the binary form with reading the JSON earlier versions wrote: a start
// decodes 100,000 of them.
func BenchmarkDecodeRecord(b *testing.B) {
	r := fullRecord()
	r.Cause, r.BlockedUntil, r.Fingerprint, r.RetryAt, r.Fetching, r.Checked = nil, time.Time{}, "", time.Time{}, time.Time{}, time.Time{}
	legacy, _ := json.Marshal(r)
	for _, c := range []struct {
		name string
		v    []byte
	}{{"binary", r.encode()}, {"json", legacy}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.v)))
			for b.Loop() {
				if _, err := decodeRecord(c.v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
