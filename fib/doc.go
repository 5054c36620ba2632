package fib
