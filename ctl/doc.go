package ctl
