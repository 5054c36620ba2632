package pmd
