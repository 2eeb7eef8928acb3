package main

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what one wrk run printed with --latency.
type wrkResult struct {
	requests int           // responses read, of any status
	elapsed  time.Duration // as wrk reports it, to 10 ms
	rate     float64       // Requests/sec
	p50, p99 time.Duration
	max      time.Duration
	non2xx   int // responses with a status outside 2xx and 3xx
	sockErrs int // connect, read, write and timeout errors
}

// failed is how many requests did not get a good answer.
func (r wrkResult) failed() int { return r.non2xx + r.sockErrs }

// parseWrk reads wrk's report. wrk 4 prints, among other lines:
//
//	    Latency     1.02ms  512.10us  12.34ms   90.12%
//	  Latency Distribution
//	     50%  0.95ms
//	     99%    3.90ms
//	  321000 requests in 5.00s, 80.00MB read
//	  Socket errors: connect 0, read 0, write 0, timeout 0
//	  Non-2xx or 3xx responses: 12
//	Requests/sec:  64200.00
//
// Times carry wrk's units (us, ms, s, m, h), which time.ParseDuration
// reads as they stand. The socket errors and non-2xx lines appear only
// when there are some.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	var seen struct{ max, p50, p99, requests, rate bool }
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		var err error
		switch {
		case f[0] == "Latency" && len(f) == 5:
			r.max, err = time.ParseDuration(f[3])
			seen.max = true
		case f[0] == "50%" && len(f) == 2:
			r.p50, err = time.ParseDuration(f[1])
			seen.p50 = true
		case f[0] == "99%" && len(f) == 2:
			r.p99, err = time.ParseDuration(f[1])
			seen.p99 = true
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			if r.requests, err = strconv.Atoi(f[0]); err == nil {
				r.elapsed, err = time.ParseDuration(strings.TrimSuffix(f[3], ","))
			}
			seen.requests = true
		case f[0] == "Requests/sec:" && len(f) == 2:
			r.rate, err = strconv.ParseFloat(f[1], 64)
			seen.rate = true
		case f[0] == "Socket" && len(f) > 2 && f[1] == "errors:":
			// connect 0, read 0, write 0, timeout 0
			for i := 3; i < len(f); i += 2 {
				n, aerr := strconv.Atoi(strings.TrimSuffix(f[i], ","))
				if aerr != nil {
					err = aerr
					break
				}
				r.sockErrs += n
			}
		case f[0] == "Non-2xx":
			r.non2xx, err = strconv.Atoi(f[len(f)-1])
		}
		if err != nil {
			return r, fmt.Errorf("wrk output line %q: %w", sc.Text(), err)
		}
	}
	var missing []string
	for _, m := range []struct {
		ok   bool
		name string
	}{{seen.max, "latency max"}, {seen.p50, "50%"}, {seen.p99, "99% (run with --latency)"},
		{seen.requests, "requests in"}, {seen.rate, "Requests/sec"}} {
		if !m.ok {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return r, errors.New("wrk output lacks " + strings.Join(missing, ", "))
	}
	return r, nil
}
