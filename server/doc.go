// Package server is wxtoken's HTTP API: business servers fetch the current
// token of the credentials their key allows and report tokens that failed;
// operators read status, liveness and readiness.
//
// Every handler returns an error, and writeError is the one place errors
// become HTTP statuses and the JSON error body:
//
//	{"error":{"code":"not_found","message":"...","errcode":40125,"errmsg":"..."}}
//
// The token read path does no allocation-heavy work: one SHA-256 of the
// bearer key, two map lookups, an atomic load of the token snapshot and a
// hand-built JSON body.
package server
