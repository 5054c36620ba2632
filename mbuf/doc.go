package mbuf
