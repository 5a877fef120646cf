print("micrograd")
