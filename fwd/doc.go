package fwd
