package memory

import (
	"testing"

	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return New() })
}
