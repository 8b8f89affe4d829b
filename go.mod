module github.com/offline-loyalty/terminal

go 1.26.8
