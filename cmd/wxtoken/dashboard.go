package main

import (
	"log/slog"
	"net/http"

	"github.com/wxtoken/wxtoken/admin"
	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/kind"
	"github.com/wxtoken/wxtoken/ui"
)

// adminPlatforms are the file's third-party platforms, as the admin API
// lists them.
func adminPlatforms(set *kind.Set) map[string]admin.Platform {
	out := make(map[string]admin.Platform, len(set.Platforms))
	for id, p := range set.Platforms {
		out[id] = p
	}
	return out
}

// dashboard is the web dashboard served under /ui/, nil (not served)
// when the file names no admin key: nobody could sign in.
func dashboard(cfg *config.Config, a *admin.Admin, log *slog.Logger) (http.Handler, error) {
	if len(cfg.Admins) == 0 {
		return nil, nil
	}
	u, err := ui.New(ui.Config{Admin: a, API: a.Handler(), Logger: log})
	if err != nil {
		return nil, err
	}
	return u, nil
}
