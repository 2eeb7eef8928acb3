package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/store/bolt"
	"github.com/wxtoken/wxtoken/store/sealed"
)

// The environment variables that give the master key, as an alternative
// to store.master_key_file.
const (
	envMasterKey         = "WXTOKEN_MASTER_KEY"
	envMasterKeyPrevious = "WXTOKEN_MASTER_KEY_PREVIOUS"
)

// resealRetry is how long a failed background pass waits to try again.
const resealRetry = time.Minute

// masterKeys reads the keyring from the environment (lookup) or the key
// file c names; nil without either. Errors name the variable or file,
// never a key.
func masterKeys(c config.Store, lookup func(string) (string, bool)) (*sealed.Keyring, error) {
	primary, inEnv := lookup(envMasterKey)
	previous, _ := lookup(envMasterKeyPrevious)
	switch {
	case inEnv && c.MasterKeyFile != "":
		return nil, fmt.Errorf("%s and store.master_key_file are both set: give the master key one way", envMasterKey)
	case c.MasterKeyFile != "":
		if previous != "" {
			return nil, fmt.Errorf("%s is set with store.master_key_file: list the previous keys in the file", envMasterKeyPrevious)
		}
		data, err := os.ReadFile(c.MasterKeyFile)
		if err != nil {
			return nil, fmt.Errorf("store.master_key_file: %w", err)
		}
		r, err := sealed.ParseKeyFile(data)
		if err != nil {
			return nil, fmt.Errorf("store.master_key_file %s: %w", c.MasterKeyFile, err)
		}
		return r, nil
	case inEnv:
		r, err := sealed.ParseKeyring(primary, previous)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", envMasterKey, envMasterKeyPrevious, err)
		}
		return r, nil
	case previous != "":
		return nil, fmt.Errorf("%s is set without %s", envMasterKeyPrevious, envMasterKey)
	}
	return nil, nil
}

// openSealedStore is openStore, sealed with the keys from the environment
// or the key file, if any (see seal).
func openSealedStore(ctx context.Context, c config.Store, dataDir string, log *slog.Logger) (store.Store, error) {
	r, err := masterKeys(c, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	st, err := openStore(ctx, c, dataDir, log)
	if err != nil {
		return nil, err
	}
	if c.Type != config.StoreRedis {
		warnLoosePermissions(dataDir, log)
	}
	return seal(ctx, st, r, log)
}

// seal wraps the opened store st as the keyring r says: without a key, it
// checks that st is not sealed and warns that it is not; with one, it
// checks that the key opens st and starts sealing what is not sealed
// under it yet, beside serving. On failure it closes st.
func seal(ctx context.Context, st store.Store, r *sealed.Keyring, log *slog.Logger) (store.Store, error) {
	if r == nil {
		if err := sealed.CheckNoKey(ctx, st); err != nil {
			st.Close()
			return nil, fmt.Errorf("%w: set %s or store.master_key_file", err, envMasterKey)
		}
		log.Warn("the store is not sealed: tokens, refresh tokens and tickets lie in it in plain text; see \"Secrets at rest\" in the README")
		return st, nil
	}
	s, err := sealed.Open(ctx, st, r, log)
	if err != nil {
		st.Close()
		return nil, err
	}
	log.Info("store sealed", "key_id", r.ID(), "keys", r.IDs())
	s.ResealInBackground(resealRetry)
	return s, nil
}

// warnLoosePermissions warns when the data directory or its file can be
// read by others than the owner. (bolt creates them 0700 and 0600; an
// existing directory keeps what it had.)
func warnLoosePermissions(dataDir string, log *slog.Logger) {
	for _, p := range []string{dataDir, filepath.Join(dataDir, bolt.FileName)} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o077 != 0 {
			log.Warn("the data is readable by others than its owner: chmod it", "path", p, "mode", fi.Mode().Perm().String())
		}
	}
}

func keygenCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	if help, err := parseFlags(fs, "Prints a new random master key (32 bytes, standard base64) for "+envMasterKey+" or store.master_key_file.", args, stdout, stderr); help || err != nil {
		return err
	}
	_, err := fmt.Fprintln(stdout, sealed.NewKey())
	return err
}

func rekeyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rekey", flag.ContinueOnError)
	path := fs.String("config", "wxtoken.yaml", "configuration file")
	summary := "Seals every value in the configured store under the master key (" + envMasterKey +
		" or store.master_key_file), opening those under the previous keys, and reports counts. It runs beside serving instances on Redis; " +
		"a running instance on bolt holds its file: restart it with the new key and the previous one, and it re-seals while serving."
	if help, err := parseFlags(fs, summary, args, stdout, stderr); help || err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	r, err := masterKeys(cfg.Store, os.LookupEnv)
	if err != nil {
		return err
	}
	if r == nil {
		return fmt.Errorf("rekey: no master key: set %s (and %s to the old key) or store.master_key_file", envMasterKey, envMasterKeyPrevious)
	}
	log := newLogger(cfg.Log, stderr)
	st, err := openStore(ctx, cfg.Store, cfg.DataDir, log)
	if errors.Is(err, bolt.ErrInUse) {
		return fmt.Errorf("%w: a running instance re-seals its own file: restart it with %s set to the new key and %s to the old one", err, envMasterKey, envMasterKeyPrevious)
	}
	if err != nil {
		return err
	}
	s, err := sealed.Open(ctx, st, r, log)
	if err != nil {
		st.Close()
		return err
	}
	defer s.Close()
	n, err := s.Reseal(ctx)
	fmt.Fprintf(stdout, "key %s: %d values, %d re-sealed, %d already under it\n", r.ID(), n.Values, n.Resealed, n.Current)
	return err
}
