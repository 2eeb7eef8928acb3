// Package component runs an Open Platform third-party platform (第三方平台):
// it keeps the component_verify_ticket WeChat pushes every ten minutes,
// fetches the component_access_token with it, and manages the authorizers,
// the accounts that authorized the platform, whose access tokens are
// refreshed with refresh tokens that must never be lost.
//
// Everything durable goes through the store before WeChat is told
// "success": the newest ticket (so a restart does not wait for the next
// push), and each authorizer's refresh token, which is written in the same
// compare-and-swap as the access token it came with (token.StatefulSource).
// Tokens themselves are kept fresh by the token.Manager like any other.
package component
