// The Go peer: net.Listener with a goroutine per connection, the idiomatic
// Go server. Run with GOMAXPROCS=1 so it gets one core like the others.
//
//	go_server PORT greeting|echo
//
// Listens on 127.0.0.1 and prints "ready" once it does. Standard library only.
package main

import (
	"fmt"
	"net"
	"os"
)

var reply = []byte("Hello from server!\n")

func greeting(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 100)
	if _, err := c.Read(buf); err != nil {
		return
	}
	c.Write(reply)
}

func echo(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 16*1024)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	if len(os.Args) != 3 || (os.Args[2] != "greeting" && os.Args[2] != "echo") {
		fmt.Fprintln(os.Stderr, "usage: go_server PORT greeting|echo")
		os.Exit(64)
	}
	handler := greeting
	if os.Args[2] == "echo" {
		handler = echo
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("ready")
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go handler(c)
	}
}
