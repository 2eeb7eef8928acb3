// Package ui is wxtoken's web dashboard, served under /ui/ from files
// embedded in the binary: plain HTML, CSS and JavaScript, with no
// external asset, so that it works where the server cannot reach the
// internet.
//
// An operator signs in with an admin key once. The key is checked with
// the admin API's keys and kept in a session held in this process's
// memory; the browser gets only a random session id in an HttpOnly,
// SameSite=Strict cookie, and a CSRF token that every request that
// changes something must echo in the X-CSRF-Token header. The page's
// data and actions go through /ui/api/…, which forwards each request to
// the admin API (/v1/admin/…) with the session's key: roles and the audit
// log apply as they do to any other admin client.
//
// Sessions live in one process. Behind a load balancer that spreads
// requests over several instances, use sticky sessions, or sign in on
// each instance.
package ui
