package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// proc is a server running as a child process, its output watched for the
// line that gives its address.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when its output has ended and it was waited for
	err  error         // Wait's error, once done

	mu   sync.Mutex
	tail []string // its last lines of output, for error messages
}

// startProc runs path with args and extra environment, stdout and stderr
// in one pipe, and returns once addr finds the address in a line of its
// output, or fails if it exits or limit passes first.
func startProc(name, path string, args, env []string, addr func(line string) string, limit time.Duration) (*proc, string, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, "", fmt.Errorf("start %s: %w", name, err)
	}
	w.Close() // the child holds its own copy
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	found := make(chan string, 1)
	go func() { // owned by p: ends when the child's output does
		defer close(p.done)
		p.watch(r, addr, found)
		r.Close()
		p.err = cmd.Wait()
	}()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case a := <-found:
		return p, a, nil
	case <-p.done:
		return nil, "", fmt.Errorf("%s exited before it listened (%v):\n%s", name, p.err, p.output())
	case <-timer.C:
		err := fmt.Errorf("%s did not say where it listens within %s:\n%s", name, limit, p.output())
		return nil, "", errors.Join(err, p.stop())
	}
}

// watch reads the child's output to its end, keeping the last lines and
// sending the first address found.
func (p *proc) watch(r io.Reader, addr func(string) string, found chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		p.tail = append(p.tail, line)
		if len(p.tail) > 20 {
			p.tail = p.tail[1:]
		}
		p.mu.Unlock()
		if !sent {
			if a := addr(line); a != "" {
				found <- a
				sent = true
			}
		}
	}
	io.Copy(io.Discard, r) // a line too long for the scanner: keep the child from blocking
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

// stop asks the child to end (SIGINT), kills it if it has not within 10s,
// and reports how it ended if not by that request.
func (p *proc) stop() error {
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		p.cmd.Process.Kill()
	}
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within 10s; killed", p.name)
	}
	if p.err != nil {
		return fmt.Errorf("%s: %w:\n%s", p.name, p.err, p.output())
	}
	return nil
}

// exited reports, without waiting, whether the child has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// runOut runs a command to its end and returns its stdout; its error
// carries stderr.
func runOut(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}
