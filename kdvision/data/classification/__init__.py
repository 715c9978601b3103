"""Classification data: embedded digits, CIFAR pickles, ImageFolder trees."""
