Console.Error.WriteLine("The emulator is being built.");
return 1;
