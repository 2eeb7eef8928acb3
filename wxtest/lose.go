package wxtest

// LoseAnswers makes the next n token calls of an appid or corpid (classic
// token and WeCom gettoken) take effect, issuing a token and starting the
// overlap of the one it replaces, but never answer: the call returns only
// when the request's context is done, as when the network drops the
// response. It is how a token server is caught between WeChat issuing a
// token and storing it.
func (f *Fake) LoseAnswers(appid string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lose == nil {
		f.lose = make(map[string]int)
	}
	f.lose[appid] = n
}

// takeLoss reports whether the answer to this call of appid is to be lost,
// using up one of the losses LoseAnswers set.
func (f *Fake) takeLoss(appid string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lose[appid] <= 0 {
		return false
	}
	f.lose[appid]--
	return true
}
