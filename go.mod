module github.com/qinsaudit/qinsaudit

go 1.26.8
