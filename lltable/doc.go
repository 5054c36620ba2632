package lltable
