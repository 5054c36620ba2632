package txq
