"""flagsvc SDK: the pure evaluation engine shared by the server and local evaluation."""
