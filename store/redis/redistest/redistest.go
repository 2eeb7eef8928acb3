// Package redistest runs a real redis-server for tests: on a free port,
// with its files in the test's temporary directory, so that tests never
// touch a Redis someone else runs. A test can stop, kill and start the
// server again on the same port and directory, to show what survives, or
// pause it to show what a hung server does to its clients. NewSentinel
// and NewCluster run the other two deployments a client must handle.
//
// The redis-server binary must be on PATH. Without it the test is skipped,
// unless the CI environment variable is set: there a missing server is a
// broken build, not a reason to pass.
package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to answer, AOF
// loading included.
const startTimeout = 15 * time.Second

// Options configures a Server. The zero value is a durable server:
// append-only file on, RDB snapshots off.
type Options struct {
	// NoAppendOnly runs the server without its append-only file, as a
	// cache is often run: a restart loses everything.
	NoAppendOnly bool
	// Args are further redis-server options, such as
	// []string{"--appendfsync", "always"}.
	Args []string
}

// Server is a redis-server process owned by one test. Its methods fail the
// test on error, and t.Cleanup kills what is still running.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	lead []string // arguments that must come first: a config file, a mode
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// New starts a redis-server for t and waits until it answers.
func New(t testing.TB, opt Options) *Server {
	t.Helper()
	appendOnly := "yes"
	if opt.NoAppendOnly {
		appendOnly = "no"
	}
	s := newServer(t)
	s.args = append(s.args, "--appendonly", appendOnly, "--save", "")
	s.args = append(s.args, opt.Args...)
	s.launch()
	return s
}

// NewSentinel starts a Sentinel that monitors master under name, with a
// quorum of one, and waits until it answers. Its Addr is what a
// Sentinel client is given, with name as the master name.
func NewSentinel(t testing.TB, master *Server, name string) *Server {
	t.Helper()
	s := newServer(t)
	conf := filepath.Join(s.dir, "sentinel.conf") // Sentinel rewrites it: it must be its own
	text := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 1\n", name, master.port)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	s.lead = []string{conf, "--sentinel"}
	s.launch()
	return s
}

// newServer prepares a Server with the options every server gets, killed
// at the end of the test if still running.
func newServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, bin: binary(t), dir: t.TempDir()}
	s.args = []string{
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--daemonize", "no",
		"--logfile", filepath.Join(s.dir, "redis.log"),
	}
	t.Cleanup(s.cleanup)
	return s
}

// launch starts s on a free port. Another process may take the port
// before the server binds it: it tries a few.
func (s *Server) launch() {
	s.t.Helper()
	var err error
	for range 3 {
		if s.port, err = freePort(); err != nil {
			break
		}
		if err = s.start(); err == nil {
			return
		}
	}
	s.t.Fatalf("redistest: %v", err)
}

// binary finds redis-server, or skips or fails t.
func binary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err == nil {
		return bin
	}
	const msg = "redistest: redis-server is not on PATH; install Redis (apt-get install redis-server) to run this test"
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (CI is set: a missing server fails instead of skipping)")
	}
	t.Skip(msg)
	return ""
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Dir is the server's working directory, where its append-only file lives.
func (s *Server) Dir() string { return s.dir }

// Start starts the server again, after Stop or Kill, on the same port and
// directory, and waits until it answers.
func (s *Server) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: %v", err)
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("start %s: already running", s.Addr())
	}
	args := append(slices.Clone(s.lead), "--port", strconv.Itoa(s.port))
	cmd := exec.Command(s.bin, append(args, s.args...)...)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	if err := awaitReady(s.Addr(), cmd.Process.Pid, done); err != nil {
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("redis-server on %s: %w\n%s", s.Addr(), err, s.logTail())
	}
	s.cmd, s.done = cmd, done
	return nil
}

// awaitReady waits until the server started as pid answers on addr. It
// asks for the process id, not just PONG, so that a server of someone
// else's that took the port first is not mistaken for ours. A server
// still loading its append-only file answers LOADING and is waited for.
func awaitReady(addr string, pid int, exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	for {
		err := identify(addr, pid)
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("exited during start (%v)", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within %v: %v", startTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// identify sends INFO server and checks the process id in the reply.
func identify(addr string, pid int) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	line = strings.TrimSpace(line)
	n, err := strconv.Atoi(strings.TrimPrefix(line, "$"))
	if !strings.HasPrefix(line, "$") || err != nil {
		return fmt.Errorf("INFO answered %q", line)
	}
	info := make([]byte, n)
	if _, err := io.ReadFull(r, info); err != nil {
		return err
	}
	if want := fmt.Sprintf("process_id:%d\r\n", pid); !strings.Contains(string(info), want) {
		return fmt.Errorf("another server answers on %s", addr)
	}
	return nil
}

// Stop shuts the server down cleanly (SIGTERM, which Redis handles like
// SHUTDOWN: the append-only file is flushed) and waits for it to exit.
func (s *Server) Stop() {
	s.t.Helper()
	if err := s.signal(syscall.SIGTERM, 10*time.Second); err != nil {
		s.t.Fatalf("redistest: stop: %v", err)
	}
}

// Kill kills the server with SIGKILL, as a crash would, and waits for it
// to exit. Only what Redis had written to its files survives.
func (s *Server) Kill() {
	s.t.Helper()
	if err := s.signal(syscall.SIGKILL, 10*time.Second); err != nil {
		s.t.Fatalf("redistest: kill: %v", err)
	}
}

// Pause freezes the server (SIGSTOP) without closing its connections, as
// a hung host or a network partition would: connections are accepted by
// the kernel, but nothing answers until Resume.
func (s *Server) Pause() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatalf("redistest: pause: %s is not running", s.Addr())
	}
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatalf("redistest: pause: %v", err)
	}
}

// Resume lets a paused server go on (SIGCONT).
func (s *Server) Resume() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatalf("redistest: resume: %s is not running", s.Addr())
	}
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		s.t.Fatalf("redistest: resume: %v", err)
	}
}

// Restart stops the server cleanly and starts it again.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.Start()
}

func (s *Server) signal(sig syscall.Signal, wait time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return fmt.Errorf("%s is not running", s.Addr())
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		return err
	}
	s.cmd.Process.Signal(syscall.SIGCONT) // a paused server acts on SIGTERM only once it runs
	select {
	case <-s.done:
	case <-time.After(wait):
		s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("%s did not exit within %v of %v; killed", s.Addr(), wait, sig)
	}
	s.cmd, s.done = nil, nil
	return nil
}

// cleanup kills a server the test left running.
func (s *Server) cleanup() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.cmd.Process.Kill()
		<-s.done
		s.cmd, s.done = nil, nil
	}
}

// logTail is the end of the server's log, for failure messages.
func (s *Server) logTail() string {
	b, err := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}
