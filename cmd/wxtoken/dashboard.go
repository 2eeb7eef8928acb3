package main

import (
	"github.com/wxtoken/wxtoken/admin"
	"github.com/wxtoken/wxtoken/kind"
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
